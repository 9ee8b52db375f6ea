/**
 * Go string semantics the parser needs: %q quoting for messages, rune quoting, and strconv
 * Unquote-like decoding of PromQL string literals (escapes, invalid UTF-8 kept as lone
 * surrogates U+DC80..U+DCFF so validity checks can reject them and messages can show them).
 */

/** Go's %q for a string (used in error messages). */
export function goQuote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    const c = s[i]!;
    if (code >= 0xdc80 && code <= 0xdcff) {
      // A byte that was not valid UTF-8 in the source (surrogateescape), shown like Go does.
      out += "\\x" + (code - 0xdc00).toString(16).padStart(2, "0");
      continue;
    }
    switch (c) {
      case '"':
        out += '\\"';
        continue;
      case "\\":
        out += "\\\\";
        continue;
      case "\n":
        out += "\\n";
        continue;
      case "\r":
        out += "\\r";
        continue;
      case "\t":
        out += "\\t";
        continue;
      case "\x07":
        out += "\\a";
        continue;
      case "\b":
        out += "\\b";
        continue;
      case "\f":
        out += "\\f";
        continue;
      case "\v":
        out += "\\v";
        continue;
    }
    if (code < 0x20 || code === 0x7f) {
      out += "\\x" + code.toString(16).padStart(2, "0");
    } else if (code >= 0xd800 && code <= 0xdfff) {
      const cp = s.codePointAt(i)!;
      if (cp > 0xffff) {
        out += String.fromCodePoint(cp);
        i++;
      } else {
        out += "\\ufffd";
      }
    } else {
      out += c;
    }
  }
  return out + '"';
}

export function goRuneQuote(c: string | undefined): string {
  if (c === undefined) return "U+FFFD"; // Go's eof rune printed with %q is '�'
  if (c === "'") return "'\\''";
  return `'${c}'`;
}

export function goRuneU(c: string): string {
  const cp = c.codePointAt(0)!;
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")} '${c}'`;
}

/**
 * Decodes a string token (with its quotes) like Go's strconv.Unquote, extended to single
 * quotes. Bytes that do not form valid UTF-8 become U+DC80..U+DCFF (surrogateescape) so that
 * validity checks can reject them and messages can print them as `\xNN`.
 */
export function unquote(tok: string): string {
  const q = tok[0];
  const body = tok.slice(1, -1);
  if (q === "`") return body;
  let out = "";
  const bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length > 0) {
      out += decodeUtf8Escaped(bytes);
      bytes.length = 0;
    }
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== "\\") {
      flush();
      out += c;
      continue;
    }
    const e = body[++i]!;
    switch (e) {
      case "a":
        flush();
        out += "\x07";
        break;
      case "b":
        flush();
        out += "\b";
        break;
      case "f":
        flush();
        out += "\f";
        break;
      case "n":
        flush();
        out += "\n";
        break;
      case "r":
        flush();
        out += "\r";
        break;
      case "t":
        flush();
        out += "\t";
        break;
      case "v":
        flush();
        out += "\v";
        break;
      case "x":
        bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
        i += 2;
        break;
      case "u":
        flush();
        out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 5), 16));
        i += 4;
        break;
      case "U":
        flush();
        out += String.fromCodePoint(parseInt(body.slice(i + 1, i + 9), 16));
        i += 8;
        break;
      default:
        if (e >= "0" && e <= "7") {
          bytes.push(parseInt(body.slice(i, i + 3), 8));
          i += 2;
        } else {
          flush();
          out += e; // \\ and the escaped quote
        }
    }
  }
  flush();
  return out;
}

function decodeUtf8Escaped(bytes: readonly number[]): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need = 0;
    let cp = 0;
    let min = 0;
    if (b < 0x80) {
      out += String.fromCharCode(b);
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      cp = b & 0x1f;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      cp = b & 0x0f;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      cp = b & 0x07;
      min = 0x10000;
    } else {
      out += String.fromCharCode(0xdc00 + b);
      i++;
      continue;
    }
    let ok = i + need <= bytes.length - 1;
    let j = 1;
    for (; ok && j <= need; j++) {
      const c = bytes[i + j]!;
      if ((c & 0xc0) !== 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (c & 0x3f);
    }
    if (ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp < 0xe000)) {
      out += String.fromCodePoint(cp);
      i += need + 1;
    } else {
      out += String.fromCharCode(0xdc00 + b);
      i++;
    }
  }
  return out;
}
