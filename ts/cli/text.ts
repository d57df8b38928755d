// Text from users on its way into the CLI: the --text file (UTF-8 only, no binary files), the
// characters a run's tokenizer does not know, and paths as a shell takes them. Labels are made
// safe for SVG and HTML by tools/plots.ts's controlPictures.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative } from 'node:path';
import type { tokenizers } from '../index.js';
import { UsageError } from './errors.js';

const hex = (ch: string): string => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Control characters other than tab, newline and carriage return in `text`: how many, and
 * the distinct ones (as U+XXXX). */
function controlCharacters(text: string): { count: number; distinct: string[] } {
  const found = text.match(/[\u0000-\u0008\u000b-\u000c\u000e-\u001f\u007f]/g) ?? [];
  return { count: found.length, distinct: [...new Set(found)].map(hex) };
}

/** The file given to `--text`, as a string. A folder, a binary file (NUL bytes) or bytes that
 * are not UTF-8 are usage errors; other control characters are kept (they are characters the
 * model can learn) with a warning on stderr. */
export function readTextFile(path: string): string {
  let isDirectory: boolean;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    throw new UsageError(`--text: no such file '${path}'`);
  }
  if (isDirectory) throw new UsageError(`--text: '${path}' is a folder; give a text file`);
  const bytes = readFileSync(path);
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new UsageError(`--text: '${path}' looks binary (a NUL byte at offset ${nul}); give a UTF-8 text file`);
  const text = bytes.toString('utf8');
  const reencoded = Buffer.from(text, 'utf8');
  if (!reencoded.equals(bytes)) {
    let at = 0;
    while (at < bytes.length && bytes[at] === reencoded[at]) at++;
    throw new UsageError(`--text: '${path}' is not UTF-8 text (invalid byte 0x${bytes[at]!.toString(16).padStart(2, '0')} at offset ${at}); convert it first, e.g. iconv -t UTF-8`);
  }
  const controls = controlCharacters(text);
  if (controls.count > 0) {
    const shown = controls.distinct.slice(0, 8).join(', ') + (controls.distinct.length > 8 ? `, ... (${controls.distinct.length} distinct)` : '');
    console.error(`warning: --text: '${path}' has ${controls.count} control character(s) (${shown}); they are trained on as characters and drawn as control pictures (\u241c for U+001C)`);
  }
  return text.startsWith('\ufeff') ? text.slice(1) : text;
}

/** The distinct characters of `text` that `tok` encodes as unknown. */
export function unknownCharacters(tok: tokenizers.Tokenizer, text: string): string[] {
  const unkId = (tok as { unkId?: number }).unkId;
  if (unkId === undefined) return [];
  return [...new Set(text)].filter((ch) => tok.encode(ch).includes(unkId));
}

/** One warning line naming characters the run's tokenizer never saw in training. */
export function unknownCharactersWarning(chars: string[], input: string): string {
  const shown = chars.map((ch) => (/^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch) ? `'${ch}'` : hex(ch))).join(', ');
  return `warning: ${JSON.stringify(input)}: ${chars.length === 1 ? 'character' : 'characters'} ${shown} never occurred in this run's training data; the model reads ${chars.length === 1 ? 'it' : 'them'} as unknown`;
}

/** A path as a user would type it in a shell: relative to the current folder when inside it,
 * single-quoted when it holds anything but plain path characters. */
export function shellPath(path: string): string {
  const rel = relative(process.cwd(), path);
  const shown = rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
  return /^[\w@%+=:,./-]+$/.test(shown) ? shown : `'${shown.replaceAll("'", "'\\''")}'`;
}
