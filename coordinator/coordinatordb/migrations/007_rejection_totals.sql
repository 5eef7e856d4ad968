-- rejection_totals caches SUM(batch_rejections.count) per reason. It is
-- updated in the settling transaction, so the admin's rejection counts read
-- one row per reason instead of every batch's rejections (which grow with
-- history).
CREATE TABLE rejection_totals (
	reason TEXT PRIMARY KEY,
	count  BIGINT NOT NULL
);
INSERT INTO rejection_totals (reason, count)
	SELECT reason, SUM(count) FROM batch_rejections GROUP BY reason;
