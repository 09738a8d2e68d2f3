// Small formatting helpers shared by the screens.

export function shortId(id: string): string {
  return id.slice(0, 8);
}

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function num(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(digits);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function isUrl(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** How a document's source is shown: a URL as it is, a file by its name (its full path on the
 *  server says nothing to a reader, and an upload's lies under the server's data dir). */
export function sourceName(source: string): string {
  if (isUrl(source)) return source;
  const name = source.split(/[\\/]/).filter(Boolean).pop();
  return name || source;
}

export const FINAL_JOB_STATES = new Set(["succeeded", "failed", "cancelled", "interrupted"]);
