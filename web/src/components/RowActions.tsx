// The edit and delete buttons of a table row (delete after a confirmation), as the
// column a table adds for those who may change its rows; the test ids are
// `edit-{kind}-{id}` and `delete-{kind}-{id}`.
import { Button, Popconfirm, Space } from 'antd';
import { useLocale } from '../i18n';

type Row = { id: number; name: string };

function RowActions<R extends Row>({ row, kind, confirm, onEdit, onDelete }: RowActionsProps<R> & { row: R }) {
  const { t } = useLocale();
  return (
    <Space size={4}>
      <Button size="small" onClick={() => onEdit(row)} aria-label={`${t('common.edit')} ${row.name}`} data-testid={`edit-${kind}-${row.id}`}>
        {t('common.edit')}
      </Button>
      <Popconfirm title={confirm(row)} onConfirm={() => onDelete(row)} okButtonProps={{ danger: true }}>
        <Button size="small" danger aria-label={`${t('common.delete')} ${row.name}`} data-testid={`delete-${kind}-${row.id}`}>
          {t('common.delete')}
        </Button>
      </Popconfirm>
    </Space>
  );
}

type RowActionsProps<R> = {
  /** What the test ids name the row (`account`, `code`, …). */
  kind: string;
  /** The question asked before deleting. */
  confirm: (row: R) => string;
  onEdit: (row: R) => void;
  onDelete: (row: R) => void;
};

/** The actions column when `editable`, else none (spread it into a table's columns). */
export function actionsColumn<R extends Row>(editable: boolean, title: string, props: RowActionsProps<R>) {
  return editable ? [{ title, key: 'actions', render: (_: unknown, row: R) => <RowActions row={row} {...props} /> }] : [];
}
