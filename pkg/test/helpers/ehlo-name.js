// The EHLO name a client uses without clientName: this machine's name when
// it is fully qualified (has a dot), "localhost" otherwise.

import { hostname } from 'node:os';

const name = hostname();
export const EHLO_NAME = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(name) ? name.toLowerCase() : 'localhost';
