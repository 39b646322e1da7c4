/** An I/O request's failure, as an errno with the C library's text. */
export const ERRNO = {
  EPERM: 1,
  EIO: 5,
  EAGAIN: 11,
  EACCES: 13,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ENOTSUP: 95,
  ECANCELED: 125,
} as const;

const STRERROR: Record<number, string> = {
  1: 'Operation not permitted',
  2: 'No such file or directory',
  5: 'Input/output error',
  11: 'Resource temporarily unavailable',
  13: 'Permission denied',
  17: 'File exists',
  20: 'Not a directory',
  21: 'Is a directory',
  22: 'Invalid argument',
  27: 'File too large',
  28: 'No space left on device',
  30: 'Read-only file system',
  95: 'Operation not supported',
  125: 'Operation canceled',
};

export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

export class IoError extends Error {
  constructor(readonly errno: number, detail?: string) {
    super(detail ?? strerror(errno));
  }
}
