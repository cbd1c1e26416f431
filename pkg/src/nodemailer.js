// `wasmtp/nodemailer`: nodemailer's createTransport on wasmtp. Migrating is
// one line:
//   import nodemailer from 'nodemailer';          →  import nodemailer from 'wasmtp/nodemailer';
//   import { createTransport } from 'nodemailer'; →  import { createTransport } from 'wasmtp/nodemailer';
// See nodemailer-compat.js for what is mapped and what is refused.

import { createClient } from '../dist/index.js';
import { NodemailerError, createTransportWith } from './nodemailer-compat.js';

/** nodemailer's createTransport(options, defaults): sendMail, verify, close. */
export function createTransport(options, defaults) {
  return createTransportWith(createClient, options, defaults);
}

export { NodemailerError };
export default { createTransport };
