/** An error as QMP reports it: QEMU's error class and its exact text. */
export type ErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotFound' | 'DeviceNotActive' | 'KVMMissingCap';

export class QmpError extends Error {
  constructor(readonly errorClass: ErrorClass, readonly desc: string) {
    super(desc);
  }
}

/** QEMU's error_setg(): a GenericError. */
export function genericError(desc: string): QmpError {
  return new QmpError('GenericError', desc);
}
