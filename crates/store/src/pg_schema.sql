-- textwatch's PostgreSQL schema, version 1 (see docs/formats.md). Applied
-- in one transaction, under an advisory lock, by the first textwatch that
-- connects to a schema without it; every statement may run again.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS templates (
    key BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    text TEXT NOT NULL,
    cluster BIGINT,
    messages BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    first_sender TEXT NOT NULL,
    first_rcpt BIGINT,
    clusterable BOOLEAN NOT NULL,
    optout BOOLEAN,
    sender_id BOOLEAN,
    findings TEXT,
    category TEXT,
    quiet BIGINT NOT NULL DEFAULT 0,
    quiet_finding TEXT,
    category_rule TEXT,
    subcategory TEXT,
    first_seg BIGINT,
    last_seg BIGINT
);
CREATE INDEX IF NOT EXISTS templates_cluster ON templates (cluster) WHERE cluster IS NOT NULL;
CREATE INDEX IF NOT EXISTS templates_singletons ON templates (seq) WHERE cluster IS NULL AND clusterable;
CREATE TABLE IF NOT EXISTS clusters (
    seq BIGINT PRIMARY KEY,
    id TEXT COLLATE "C" NOT NULL UNIQUE,
    leader BIGINT NOT NULL,
    messages BIGINT NOT NULL,
    templates BIGINT NOT NULL,
    senders BIGINT NOT NULL,
    recipients BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    formed_ts BIGINT NOT NULL,
    reps BYTEA NOT NULL,
    merged_into BIGINT,
    actor TEXT,
    meaning BYTEA,
    infra TEXT
);
CREATE INDEX IF NOT EXISTS clusters_merged_into ON clusters (merged_into) WHERE merged_into IS NOT NULL;
CREATE TABLE IF NOT EXISTS campaign_links (
    n BIGSERIAL PRIMARY KEY,
    cluster BIGINT NOT NULL,
    variant BIGINT NOT NULL,
    via BIGINT NOT NULL,
    kind TEXT NOT NULL,
    evidence TEXT NOT NULL,
    similarity DOUBLE PRECISION NOT NULL,
    ts BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS campaign_links_cluster ON campaign_links (cluster);
CREATE TABLE IF NOT EXISTS campaign_apart (
    a BIGINT NOT NULL,
    b BIGINT NOT NULL,
    PRIMARY KEY (a, b)
);
CREATE TABLE IF NOT EXISTS campaign_edits (
    n BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    action TEXT NOT NULL,
    campaign TEXT NOT NULL,
    other TEXT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cluster_senders (
    cluster BIGINT NOT NULL,
    sender TEXT NOT NULL,
    messages BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    PRIMARY KEY (cluster, sender)
);
CREATE INDEX IF NOT EXISTS cluster_senders_sender ON cluster_senders (sender);
CREATE TABLE IF NOT EXISTS cluster_minutes (
    cluster BIGINT NOT NULL,
    minute BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (cluster, minute)
);
CREATE TABLE IF NOT EXISTS number_sources (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    file TEXT NOT NULL,
    file_date TEXT,
    rows BIGINT NOT NULL,
    imported_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS number_prefixes (
    n BIGSERIAL PRIMARY KEY,
    source TEXT NOT NULL,
    prefix TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    origin TEXT NOT NULL,
    date TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS number_prefixes_source ON number_prefixes (source);
CREATE TABLE IF NOT EXISTS campaign_blocks (
    campaign TEXT PRIMARY KEY,
    blocked_at BIGINT NOT NULL,
    by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id BIGSERIAL PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    name TEXT,
    created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS alerts (
    campaign TEXT NOT NULL,
    level TEXT NOT NULL,
    fired_at BIGINT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (campaign, level)
);
-- The message log: segments as in the embedded store's files, their bytes
-- in chunks (one per committed batch; in order they are an Arrow IPC
-- stream), written in the transaction of the batch's metadata.
CREATE TABLE IF NOT EXISTS segments (
    id BIGINT PRIMARY KEY,
    rows BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    sealed BOOLEAN NOT NULL,
    min_ts BIGINT,
    max_ts BIGINT,
    hash BIGINT,
    chunks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS segment_chunks (
    segment BIGINT NOT NULL,
    n INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (segment, n)
);
CREATE TABLE IF NOT EXISTS segment_clusters (
    cluster BIGINT NOT NULL,
    segment BIGINT NOT NULL,
    PRIMARY KEY (cluster, segment)
);
CREATE TABLE IF NOT EXISTS campaign_samples (
    n BIGSERIAL PRIMARY KEY,
    cluster BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    id TEXT NOT NULL,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    source TEXT,
    template TEXT NOT NULL,
    origin TEXT,
    meta TEXT
);
CREATE INDEX IF NOT EXISTS campaign_samples_cluster ON campaign_samples (cluster);
CREATE TABLE IF NOT EXISTS campaign_reporters (
    cluster BIGINT NOT NULL,
    reporter BYTEA NOT NULL,
    first_ts BIGINT NOT NULL,
    PRIMARY KEY (cluster, reporter)
);
CREATE TABLE IF NOT EXISTS optout_ignored (
    cluster BIGINT NOT NULL,
    recipient BYTEA NOT NULL,
    messages BIGINT NOT NULL,
    first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL,
    sender TEXT NOT NULL,
    opted_out_at BIGINT NOT NULL,
    keyword TEXT NOT NULL,
    PRIMARY KEY (cluster, recipient)
);
CREATE TABLE IF NOT EXISTS optout_changes (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    recipient BYTEA NOT NULL,
    scope TEXT NOT NULL,
    out BOOLEAN NOT NULL,
    keyword TEXT NOT NULL,
    source TEXT NOT NULL,
    texted TEXT NOT NULL
);
-- The records people add: 7726 halves waiting for their pair, appeals
-- and the policy allows they add, the audit log, takedown reports sent.
CREATE TABLE IF NOT EXISTS report_pending (
    reporter BYTEA PRIMARY KEY,
    ts BIGINT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS appeals (
    id BIGSERIAL PRIMARY KEY,
    opened_at BIGINT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    contact TEXT NOT NULL,
    reason TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    decided_at BIGINT,
    decided_by TEXT,
    decision_reason TEXT
);
CREATE TABLE IF NOT EXISTS policy_allows (
    version BIGSERIAL PRIMARY KEY,
    added_at BIGINT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    appeal BIGINT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION textwatch_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION textwatch_audit_log_append_only();
CREATE TABLE IF NOT EXISTS reports (
    id BIGSERIAL PRIMARY KEY,
    campaign TEXT NOT NULL,
    provider TEXT NOT NULL,
    sent_at BIGINT NOT NULL,
    sent_to TEXT,
    via TEXT NOT NULL,
    format TEXT NOT NULL,
    numbers TEXT NOT NULL,
    reference TEXT,
    answer TEXT,
    answered_at BIGINT
);
