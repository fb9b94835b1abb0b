/**
 * zod 4 "mini" is used everywhere: the same validation as classic zod, but tree-shakable (classic
 * adds ~440 KB to a bundle, mini ~40 KB; see BENCHMARKS.md). Import it as
 * `import * as z from 'zod/mini'` (a namespace import, so unused parts drop out) together with this
 * module, which configures English messages once.
 */
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());
