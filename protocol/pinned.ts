/**
 * `.vscode/sandbox-agents.json`: the agents a repository pins for its team (issue 8). This zod schema is
 * the one source: the extension parses the file with it, and the build turns it into the JSON Schema that
 * `contributes.jsonValidation` gives the editor (`z.toJSONSchema`, see scripts/pinnedSchema.mjs), so
 * completion and validation in the file can never drift from what the extension accepts.
 *
 * What JSON Schema cannot say (unknown platform names, duplicate names, literal secret values) is checked
 * with exact ranges by extension/pinnedDiagnostics.ts.
 */
import * as z from 'zod/mini';
import './zod';
import { HARNESSES } from './harnesses';
import { PLATFORM_HARNESSES } from './platform';
import { WorkspaceMode } from './sandbox';

export const PINNED_FILE = '.vscode/sandbox-agents.json';
/** Where the build writes the generated JSON Schema (shipped in the package). */
export const PINNED_SCHEMA_OUT = 'dist/sandbox-agents.schema.json';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const envName = () => z.string().check(z.regex(ENV_NAME, 'must match ^[A-Za-z_][A-Za-z0-9_]*$'));
const nonEmpty = () => z.string().check(z.minLength(1));
const opt = z.optional;

/** Every harness either backend runs. */
export const PINNED_HARNESSES = [...new Set([...HARNESSES.map((h) => h.id), ...PLATFORM_HARNESSES])];

/** A key that names a credential: its value must be a `{"secret": "NAME"}` reference, never a literal. */
export const SECRET_LIKE_KEY = /KEY|TOKEN|SECRET|PASSWORD/i;

/** `{"secret": "NAME"}`: the value lives in SecretStorage under NAME, asked for once. */
export const SecretRef = z
  .strictObject({ secret: envName().register(z.globalRegistry, { description: 'A name from this agent\'s "secrets".' }) })
  .register(z.globalRegistry, { description: 'A secret by name; its value lives in SecretStorage, never in this file.' });
export type SecretRef = z.infer<typeof SecretRef>;

/** Text inline, or a file relative to the workspace folder. */
export const PromptSource = z.union([
  z.string(),
  z.strictObject({ file: nonEmpty().register(z.globalRegistry, { description: 'Workspace-relative path of a file holding the prompt.' }) }),
]);
export type PromptSource = z.infer<typeof PromptSource>;

export const PinnedResources = z.strictObject({
  cpus: opt(z.number().check(z.positive())),
  memory_mb: opt(z.int().check(z.minimum(64))),
  pids: opt(z.int().check(z.minimum(16))),
});
export type PinnedResources = z.infer<typeof PinnedResources>;

function described<T extends z.core.$ZodType>(schema: T, description: string): T {
  z.globalRegistry.add(schema, { description });
  return schema;
}

export const PinnedAgent = z.strictObject({
  name: described(nonEmpty(), 'Unique in this file; the agent on the backend is matched by this name.'),
  harness: described(z.enum(PINNED_HARNESSES as [string, ...string[]]), 'What runs in the sandbox.'),
  backend: opt(
    described(
      nonEmpty(),
      'Where it runs: "local" (Docker through the bridge), "platform" (the signed-in platform), or a name from the setting sandboxAgents.platforms. Default: local.',
    ),
  ),
  model: opt(described(nonEmpty(), 'Model id, e.g. claude-sonnet-4-5. Default: the harness\'s.')),
  prompt: opt(described(PromptSource, 'System prompt: text, or {"file": "relative/path.md"}.')),
  repo_url: opt(described(nonEmpty(), 'Repository the sandbox clones (platform, or local "clone").')),
  branch: opt(nonEmpty()),
  workspace: opt(described(WorkspaceMode, 'Local only: how the workspace reaches the sandbox. Default: mount.')),
  resources: opt(PinnedResources),
  allow_out: opt(described(z.array(nonEmpty()), 'Hosts the sandbox may reach (egress allow list).')),
  deny_out: opt(described(z.array(nonEmpty()), 'Hosts the sandbox may never reach.')),
  env: opt(described(z.record(envName(), z.union([z.string(), SecretRef])), 'Plain environment values, or {"secret": "NAME"} references.')),
  secrets: opt(
    described(
      z.record(envName(), z.array(nonEmpty())),
      'Secrets by name → the hosts each may be sent to. Values are asked for once and kept in SecretStorage.',
    ),
  ),
  mcp_servers: opt(described(z.array(nonEmpty()), 'MCP servers the agent may use.')),
});
export type PinnedAgent = z.infer<typeof PinnedAgent>;

export const PinnedFile = z.strictObject({
  $schema: opt(z.string()),
  agents: z.array(PinnedAgent),
});
export type PinnedFile = z.infer<typeof PinnedFile>;

/** The JSON Schema contributed for the file (generated at build time; see scripts/pinnedSchema.mjs). */
export function pinnedJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(PinnedFile, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  return { ...schema, title: 'Sandbox Agents: workspace-pinned agents', description: `Agents pinned for this repository (${PINNED_FILE}).` };
}
