-- A job is failed after so many attempts in a row that made no progress,
-- not after so many attempts: claimed_frames is frames_done when the job
-- was last claimed, stalled_attempts the interrupted attempts in a row
-- that did not move frames_done past it.
ALTER TABLE jobs ADD COLUMN claimed_frames BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN stalled_attempts INTEGER NOT NULL DEFAULT 0;
