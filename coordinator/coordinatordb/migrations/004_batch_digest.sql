-- A settlement batch id names one batch's content: the digest of its pairs
-- lets a reused id with different pairs be refused (409) instead of being
-- answered with the first batch's result as if it had been a replay.
-- Batches settled before this migration have '' and are not compared.
ALTER TABLE settlement_batches ADD COLUMN content_sha256 TEXT NOT NULL DEFAULT '';
