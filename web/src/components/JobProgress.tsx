// A job's state and progress, as the Jobs page lists them and as pages that started a
// job follow it.
import { Progress, Tag, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { api, unwrap, type Schemas } from '../api/client';
import { formatNumber } from '../format';
import { useLocale, type MessageKey } from '../i18n';

type Job = Schemas['Job'];
type JobState = Schemas['JobState'];

// text and background of each state's tag, at WCAG AA contrast
const STATE_COLOURS: Record<JobState, [string, string]> = {
  waiting: ['#ad4e00', '#fff7e6'],
  running: ['#1d4ed8', '#eff6ff'],
  done: ['#237804', '#f6ffed'],
  dead: ['#cf1322', '#fff1f0'],
  cancelled: ['#525252', '#f5f5f5'],
};

/** Whether a job may still change (it waits or runs). */
export function jobLive(job: Job | null | undefined): boolean {
  return !!job && (job.state === 'waiting' || job.state === 'running');
}

/** A job's state as a coloured tag. */
export function JobStateTag({ job }: { job: Job }) {
  const { t } = useLocale();
  const s = job.state;
  return (
    <Tag data-testid={`job-state-${job.id}`} data-state={s} style={{ color: STATE_COLOURS[s][0], background: STATE_COLOURS[s][1], borderColor: STATE_COLOURS[s][0] }}>
      {t(`jobs.state.${s}` as MessageKey)}
    </Tag>
  );
}

/** How far a job got: a bar when its total is known, the count otherwise, and its line. */
export function JobProgressCell({ job }: { job: Job }) {
  const { locale } = useLocale();
  const { done, total, message } = job.progress;
  const finished = job.state === 'done';
  const percent = total ? Math.min(100, Math.floor((done / total) * 100)) : finished ? 100 : 0;
  const status = job.state === 'dead' ? 'exception' : finished ? 'success' : job.state === 'running' ? 'active' : 'normal';
  return (
    <div data-testid={`job-progress-${job.id}`}>
      <Progress percent={percent} size="small" status={status} aria-label={`${percent}%`} format={() => (total ? `${formatNumber(locale, done)} / ${formatNumber(locale, total)}` : done > 0 ? formatNumber(locale, done) : `${percent}%`)} />
      {message && (
        <Typography.Text type="secondary" style={{ fontSize: 12 }} ellipsis={{ tooltip: message }}>
          {message}
        </Typography.Text>
      )}
    </div>
  );
}

/** Follows a job this page started (polling every second until it finishes) and shows
 * its progress; `onFinished` is told once it is done, dead or cancelled. */
export function FollowJob({ id, onFinished }: { id: number; onFinished?: (job: Job) => void }) {
  const [job, setJob] = useState<Job | null>(null);
  useEffect(() => {
    let stopped = false;
    async function poll() {
      while (!stopped) {
        try {
          const current: Job = await unwrap(api.GET('/api/v1/jobs/{id}', { params: { path: { id } } }));
          if (stopped) return;
          setJob(current);
          if (current.state === 'done' || current.state === 'dead' || current.state === 'cancelled') {
            onFinished?.(current);
            return;
          }
        } catch {
          // shown as not started yet; tried again
        }
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    void poll();
    return () => {
      stopped = true;
    };
  }, [id]);
  return job ? <JobProgressCell job={job} /> : <Progress percent={0} size="small" status="active" />;
}
