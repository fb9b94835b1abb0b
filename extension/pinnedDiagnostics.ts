/**
 * The checks on `.vscode/sandbox-agents.json` that its JSON Schema cannot express, each with the exact
 * range of the offending token: a backend naming no configured platform, a name used twice, a secret-like
 * key with a literal value, and a `{"secret": "NAME"}` reference to a secret the agent does not declare.
 * Schema errors themselves (types, unknown fields, enums) come from VS Code's JSON language service through
 * `contributes.jsonValidation`, so they are not repeated here.
 *
 * Pure (no `vscode` import): ranges are offsets into the text; the caller maps them to positions.
 */
import { type Node, findNodeAtLocation, parseTree } from 'jsonc-parser';
import { SECRET_LIKE_KEY } from '../protocol/pinned';

export type PinnedSeverity = 'error' | 'warning';

export interface PinnedDiagnostic {
  severity: PinnedSeverity;
  message: string;
  /** Offsets into the text: [start, end). */
  start: number;
  end: number;
  /** Another place the message refers to (the first use of a duplicated name). */
  related?: { message: string; start: number; end: number };
}

/** Backends every workspace has; other names come from the setting `sandboxAgents.platforms`. */
export const BUILTIN_BACKENDS = ['local', 'platform'] as const;

export const LITERAL_SECRET_MESSAGE = 'use {"secret": "NAME"}; values live in SecretStorage';

/** The extra checks; `platforms` are the names configured in `sandboxAgents.platforms`. */
export function pinnedDiagnostics(text: string, platforms: readonly string[]): PinnedDiagnostic[] {
  const root = parseTree(text, [], { allowTrailingComma: true, disallowComments: false });
  if (!root) return [];
  const agents = findNodeAtLocation(root, ['agents']);
  if (agents?.type !== 'array') return [];
  const out: PinnedDiagnostic[] = [];
  const firstByName = new Map<string, Node>();
  const known = new Set<string>([...BUILTIN_BACKENDS, ...platforms]);

  for (const agent of agents.children ?? []) {
    if (agent.type !== 'object') continue;

    const name = findNodeAtLocation(agent, ['name']);
    if (name?.type === 'string' && typeof name.value === 'string' && name.value !== '') {
      const first = firstByName.get(name.value);
      if (first) {
        out.push({
          severity: 'error',
          message: `Duplicate agent name "${name.value}": names are how agents are matched on their backend, so each must be unique in this file.`,
          ...span(name),
          related: { message: 'first used here', ...span(first) },
        });
      } else firstByName.set(name.value, name);
    }

    const backend = findNodeAtLocation(agent, ['backend']);
    if (backend?.type === 'string' && typeof backend.value === 'string' && !known.has(backend.value)) {
      const choices = [...known].map((b) => `"${b}"`).join(', ');
      out.push({
        severity: 'error',
        message: `Unknown platform "${backend.value}": use one of ${choices}, or add it to the setting sandboxAgents.platforms.`,
        ...span(backend),
      });
    }

    const secrets = findNodeAtLocation(agent, ['secrets']);
    const declared = new Set(secrets?.type === 'object' ? (secrets.children ?? []).map((p) => p.children?.[0]?.value as string) : []);
    checkValues(agent, declared, out);
  }
  return out;
}

/** Literal values under secret-like keys, and references to undeclared secrets, anywhere in an agent. */
function checkValues(node: Node, declared: ReadonlySet<string>, out: PinnedDiagnostic[]): void {
  if (node.type === 'object') {
    // A `{"secret": "NAME"}` reference: NAME must be declared in this agent's "secrets".
    const ref = refName(node);
    if (ref) {
      if (typeof ref.value === 'string' && !declared.has(ref.value)) {
        out.push({
          severity: 'error',
          message: `Secret "${ref.value}" is not declared: add it to this agent's "secrets" with the hosts it may be sent to.`,
          ...span(ref),
        });
      }
      return;
    }
    for (const prop of node.children ?? []) {
      const [key, value] = prop.children ?? [];
      if (!key || !value) continue;
      // The hosts under an agent's "secrets" are not secret values (their shape is the schema's job).
      if (key.value === 'secrets' && node.parent?.type === 'array') continue;
      if (SECRET_LIKE_KEY.test(String(key.value)) && isLiteral(value)) {
        out.push({ severity: 'error', message: LITERAL_SECRET_MESSAGE, ...span(value) });
        continue;
      }
      checkValues(value, declared, out);
    }
  } else if (node.type === 'array') {
    for (const child of node.children ?? []) checkValues(child, declared, out);
  }
}

function refName(node: Node): Node | undefined {
  const props = node.children ?? [];
  if (props.length !== 1) return undefined;
  const [key, value] = props[0].children ?? [];
  return key?.value === 'secret' && value ? value : undefined;
}

/** A non-empty literal (string or number): an empty string holds no secret. */
function isLiteral(node: Node): boolean {
  return (node.type === 'string' && node.value !== '') || node.type === 'number';
}

function span(node: Node): { start: number; end: number } {
  return { start: node.offset, end: node.offset + node.length };
}

/** Offset → zero-based line and character, as `vscode.Position` takes them. */
export function positionAt(text: string, offset: number): { line: number; character: number } {
  let line = 0;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, character: offset - lineStart };
}
