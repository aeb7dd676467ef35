// A create-or-edit dialog around a form: Save submits it, the API's refusal shows inside
// the dialog (a 422's messages under the fields they name, the rest above the form), and
// each time it opens the form starts again from `values`.
import { Alert, Form, Modal } from 'antd';
import type { FormInstance } from 'antd';
import { useLayoutEffect, useState, type ReactNode } from 'react';
import { ApiError, errorMessage } from '../api/client';
import { useLocale } from '../i18n';

type Path = (string | number)[];

/** An API field name as a form path: `members[0].weight` is `['members', 0, 'weight']`. */
export function fieldPath(field: string): Path {
  return field
    .split(/[.[\]]/)
    .filter((p) => p !== '')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

export function FormModal<V extends object>({
  open,
  title,
  form,
  values,
  onClose,
  submit,
  fieldOf,
  width,
  name,
  children,
}: {
  open: boolean;
  title: string;
  /** The form (the caller's, so it can watch fields). */
  form: FormInstance<V>;
  /** What the form starts from when opened. */
  values: Partial<V>;
  onClose: () => void;
  /** Sends the form; a thrown error is shown and the dialog stays open. */
  submit: (v: V) => Promise<unknown>;
  /** The form path an API field name shows under (none: above the form). */
  fieldOf?: (field: string) => Path | null;
  width?: number;
  /** The form's name, which its fields' ids start with (the dialogs of a page are all
   * there, hidden, so each needs its own), and its test id. */
  name: string;
  children: ReactNode;
}) {
  const { t } = useLocale();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  // before the dialog shows (a layout effect): what is typed into it as soon as it
  // shows is never overwritten by the values it opens with
  useLayoutEffect(() => {
    if (!open) return;
    setError(null);
    form.resetFields();
    form.setFieldsValue(values as Parameters<typeof form.setFieldsValue>[0]);
    // the values of the record being opened, once per opening
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [open]);

  async function finish(v: V) {
    setBusy(true);
    setError(null);
    try {
      await submit(v);
      onClose();
    } catch (e) {
      setError(showFieldErrors(form, e, fieldOf));
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal
      open={open}
      title={title}
      onCancel={onClose}
      onOk={() => form.submit()}
      confirmLoading={busy}
      okText={t('common.save')}
      cancelText={t('common.cancel')}
      width={width}
      forceRender
    >
      {error && <Alert type="error" showIcon title={error} role="alert" style={{ marginBottom: 12 }} />}
      <Form form={form} name={name} layout="vertical" onFinish={finish} data-testid={name}>
        {children}
      </Form>
    </Modal>
  );
}

/** Puts a 422's messages under the fields they name; answers what is left to show above
 * the form (null when every message found its field). */
function showFieldErrors<V>(form: FormInstance<V>, e: unknown, fieldOf?: (field: string) => Path | null): string | null {
  // an answer without a message reads as its code (`conflict`)
  if (!(e instanceof ApiError) || e.fields.length === 0 || !fieldOf) return errorMessage(e) || (e instanceof ApiError ? e.code : String(e));
  const rest: string[] = [];
  const shown: { name: Path; errors: string[] }[] = [];
  for (const f of e.fields) {
    const name = fieldOf(f.field);
    if (name) shown.push({ name, errors: [f.message] });
    else rest.push(`${f.field}: ${f.message}`);
  }
  form.setFields(shown as Parameters<typeof form.setFields>[0]);
  return rest.length ? rest.join('; ') : null;
}
