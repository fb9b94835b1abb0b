/** Typed access to the extension's settings (declared in package.json `contributes.configuration`). */
import * as vscode from 'vscode';

export const SECTION = 'sandboxAgents';

export interface Settings {
  'platform.url': string;
  'platform.ttyFallbackUrl': string;
  'sessions.startTimeoutMinutes': number;
  'agents.showEndedSessions': boolean;
  'local.enabled': boolean;
  'local.runtime': 'docker' | 'host';
  'local.dockerHost': string;
  'local.shellImage': string;
  'local.baseImage': string;
  'local.stateDir': string;
  'terminal.renderer': 'webview' | 'integrated';
}

const defaults: Settings = {
  'platform.url': '',
  'platform.ttyFallbackUrl': '',
  'sessions.startTimeoutMinutes': 10,
  'agents.showEndedSessions': false,
  'local.enabled': true,
  'local.runtime': 'docker',
  'local.dockerHost': '',
  'local.shellImage': '',
  'local.baseImage': '',
  'local.stateDir': '',
  'terminal.renderer': 'webview',
};

export function setting<K extends keyof Settings>(key: K): Settings[K] {
  return vscode.workspace.getConfiguration(SECTION).get<Settings[K]>(key, defaults[key]);
}

export async function updateSetting<K extends keyof Settings>(key: K, value: Settings[K]): Promise<void> {
  await vscode.workspace.getConfiguration(SECTION).update(key, value, vscode.ConfigurationTarget.Global);
}

export function affects(e: vscode.ConfigurationChangeEvent, ...keys: (keyof Settings)[]): boolean {
  return keys.some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
}
