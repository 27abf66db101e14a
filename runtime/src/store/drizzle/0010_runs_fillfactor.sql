-- Half of each page of "runs" is left free, so the run row's updates (a dozen per run: its last seq,
-- node states and usage change with every commit, and none of them is indexed) are HOT: the new
-- version goes on the same page and none of the table's nine indexes gets an entry. At the default
-- (100) about 40% of those updates moved the row and wrote all nine indexes.
ALTER TABLE "runs" SET (fillfactor = 50);
