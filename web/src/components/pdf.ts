// pdf.js, loaded only when a PDF is opened (a dynamic import keeps it out of the main bundle).
// The worker is a bundled asset served by Lore itself, never a CDN.
import { GlobalWorkerOptions, getDocument, type PDFDocumentProxy, type RenderTask } from "pdfjs-dist";
import workerUrl from "pdfjs-dist/build/pdf.worker.min.mjs?url";

GlobalWorkerOptions.workerSrc = workerUrl;

export type PdfDocument = PDFDocumentProxy;

export async function openPdf(data: ArrayBuffer): Promise<PDFDocumentProxy> {
  // No eval (the CSP forbids it) and errors only: warnings about fonts are not the user's business.
  return await getDocument({ data, isEvalSupported: false, verbosity: 0 }).promise;
}

export type Rendered = { scale: number; width: number; height: number };

/** Draw page `n` (1-based) to fit `maxWidth` CSS pixels; returns the scale from PDF points. */
export async function renderPage(
  doc: PDFDocumentProxy,
  n: number,
  canvas: HTMLCanvasElement,
  maxWidth: number,
  previous?: { task: RenderTask | null },
): Promise<Rendered> {
  const page = await doc.getPage(n);
  const base = page.getViewport({ scale: 1 });
  const scale = Math.min(2, Math.max(0.3, maxWidth / base.width));
  const viewport = page.getViewport({ scale });
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  canvas.style.width = `${Math.floor(viewport.width)}px`;
  canvas.style.height = `${Math.floor(viewport.height)}px`;
  previous?.task?.cancel();
  const task = page.render({
    canvas,
    viewport,
    transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : undefined,
  });
  if (previous) previous.task = task;
  await task.promise;
  return { scale, width: viewport.width, height: viewport.height };
}
