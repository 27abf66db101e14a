ALTER TABLE "runs" ADD COLUMN "replay" jsonb;--> statement-breakpoint
CREATE INDEX "runs_replay_of_idx" ON "runs" USING btree (("replay"->>'of'));