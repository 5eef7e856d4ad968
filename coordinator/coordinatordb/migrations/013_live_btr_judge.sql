-- live_btr_log.judge: the node id of the key a statement verifies against
-- when it is not the chain's origin's: the coordinator's key as the relays'
-- judge (coordinator/live/relayjudge.go, kind 'relay-exclusion'), kept with
-- each exclusion so a stored one still verifies after the coordinator's
-- key changed. Empty for the origin's statements.
ALTER TABLE live_btr_log ADD COLUMN judge TEXT NOT NULL DEFAULT '';
