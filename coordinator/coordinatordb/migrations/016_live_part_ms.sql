-- live_channels.part_ms: a low-latency channel's part target in ms
-- (docs/LIVE.md "Low-Latency HLS"); 0, the default, is a standard channel.
ALTER TABLE live_channels ADD COLUMN part_ms BIGINT NOT NULL DEFAULT 0;
