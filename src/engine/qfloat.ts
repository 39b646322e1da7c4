/**
 * A JSON number QEMU holds as a double (a QNum of kind QNUM_DOUBLE): one
 * written with a fraction or an exponent, or an integer beyond uint64.
 *
 * JavaScript has one number type, so values parsed off the QMP wire mark
 * their floats with this box: `1.0` stays a float (QAPI refuses it where an
 * integer is expected, and it prints as `%.17g`), while integers arrive as
 * plain numbers, or as bigints past 2^53 so they keep every digit. Values
 * built in-process use plain numbers throughout, an integral one counting
 * as an integer.
 */
export class QFloat {
  constructor(readonly value: number) {}
}
