// Server-Sent Events read from a fetch Response body (EventSource can neither POST nor send a
// bearer header). Follows the WHATWG parsing rules: CR, LF or CRLF line ends, multi-line data,
// comments, `id:` and a blank line ending each event.

export type SseEvent = { event: string; data: string; id: string | null };

export async function readSse(
  response: Response,
  onEvent: (event: SseEvent) => void,
  signal?: AbortSignal,
): Promise<void> {
  if (!response.body) throw new Error("The response has no body to stream.");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const abort = () => void reader.cancel().catch(() => undefined);
  signal?.addEventListener("abort", abort);
  let buffer = "";
  let eventName = "";
  let data: string[] = [];
  let id: string | null = null;
  const dispatch = () => {
    if (data.length > 0) onEvent({ event: eventName || "message", data: data.join("\n"), id });
    eventName = "";
    data = [];
  };
  const line = (text: string) => {
    if (text === "") return dispatch();
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? "" : text.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") eventName = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      // Split on any line end; a trailing CR may be half of a CRLF still in flight, so keep it.
      for (;;) {
        const match = /\r\n|\r|\n/.exec(buffer);
        if (!match) break;
        if (match[0] === "\r" && match.index === buffer.length - 1) break;
        line(buffer.slice(0, match.index));
        buffer = buffer.slice(match.index + match[0].length);
      }
    }
    if (buffer) line(buffer);
    dispatch();
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}
