// Imported first by every view, so it runs before any zod schema is made. zod compiles object
// validators with `new Function` unless told not to, and tests once whether it may, when its first
// object schema is made: the extension's schemas are made as its module loads, before `App`'s
// constructor sets this same option. Under the host's CSP (no 'unsafe-eval') that test is refused,
// and the host hears of a CSP violation from every view; with the option set first, zod never tries.
import { z } from "zod/v4";

z.config({ jitless: true });
