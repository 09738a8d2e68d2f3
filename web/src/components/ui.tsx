// Small shared pieces: errors with retry, loading and empty states, the corpus picker, dialogs.
import type { ComponentChildren, TargetedMouseEvent } from "preact";
import { useEffect, useId, useRef } from "preact/hooks";
import type { Corpus } from "../types";
import { Close } from "./icons";

export function ErrorMessage({ error, onRetry }: { error: string | null; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <span>{error}</span>
      {onRetry && (
        <button type="button" class="button small" onClick={onRetry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Loading({ label = "Loading…" }: { label?: string }) {
  return (
    <p class="loading" role="status">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function CorpusSelect({
  corpora,
  value,
  onChange,
  label = "Corpus",
  allLabel,
  id,
  required,
}: {
  corpora: Corpus[];
  value: string;
  onChange: (value: string) => void;
  label?: string;
  allLabel?: string;
  id?: string;
  required?: boolean;
}) {
  const auto = useId();
  const fieldId = id ?? `corpus-${auto}`;
  return (
    <div class="field">
      <label for={fieldId}>{label}</label>
      <select id={fieldId} value={value} required={required} onChange={(e) => onChange(e.currentTarget.value)}>
        {allLabel !== undefined && <option value="">{allLabel}</option>}
        {allLabel === undefined && corpora.length === 0 && <option value="">No corpora yet</option>}
        {corpora.map((c) => (
          <option key={c.id} value={c.name}>
            {c.name}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A modal dialog (native <dialog>: focus stays inside, Esc closes); focus returns where it was. */
export function Dialog({
  title,
  onClose,
  children,
  wide,
  class: className,
  describedBy,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
  class?: string;
  describedBy?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const close = useRef(onClose);
  close.current = onClose;
  useEffect(() => {
    const opener = document.activeElement as HTMLElement | null;
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    return () => {
      if (dialog?.open) dialog.close();
      if (opener && document.contains(opener)) opener.focus();
    };
  }, []);
  const onCancel = (e: Event) => {
    e.preventDefault();
    close.current();
  };
  const onClick = (e: TargetedMouseEvent<HTMLDialogElement>) => {
    // A click on the backdrop (outside the dialog's box) closes it.
    if (ref.current && e.target === ref.current) {
      const r = ref.current.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) close.current();
    }
  };
  return (
    <dialog
      ref={ref}
      class={`dialog${wide ? " wide" : ""}${className ? " " + className : ""}`}
      aria-labelledby={titleId}
      aria-describedby={describedBy}
      onCancel={onCancel}
      onClick={onClick}
    >
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        <button type="button" class="icon-button" aria-label="Close" onClick={() => close.current()}>
          <Close />
        </button>
      </div>
      <div class="dialog-body">{children}</div>
    </dialog>
  );
}

export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  busy,
  error,
  danger = true,
  confirmDisabled,
}: {
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  error?: string | null;
  danger?: boolean;
  confirmDisabled?: boolean;
}) {
  return (
    <Dialog title={title} onClose={onCancel}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!confirmDisabled && !busy) onConfirm();
        }}
      >
        {children}
        <ErrorMessage error={error ?? null} />
        <div class="actions">
          <button type="submit" class={`button ${danger ? "danger" : "primary"}`} disabled={busy || confirmDisabled}>
            {confirmLabel}
          </button>
          <button type="button" class="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Dialog>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state}`}>{state}</span>;
}

export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
}
