#!/usr/bin/env node
// The `fax` command. Registers tsx so the TypeScript sources run as they are, with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
