/** Error text as QEMU composes it: error_setg_errno() appends strerror(), nested errors their text. */
import { IoError, strerror } from '../../io-error';
import { QmpError } from '../../qmp-error';

export function describeError(error: unknown): string {
  if (error instanceof IoError) return strerror(error.errno);
  if (error instanceof QmpError) return error.desc;
  return error instanceof Error ? error.message : String(error);
}
