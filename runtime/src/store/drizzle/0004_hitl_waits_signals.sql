CREATE TABLE "signals" (
	"id" text PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"node" text NOT NULL,
	"wait_id" text,
	"payload" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"consumed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "waits" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "wake_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "signals" ADD CONSTRAINT "signals_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "signals_wait_idx" ON "signals" USING btree ("run_id","wait_id");--> statement-breakpoint
CREATE UNIQUE INDEX "signals_early_idx" ON "signals" USING btree ("run_id","node") WHERE "signals"."wait_id" is null and "signals"."consumed_at" is null;--> statement-breakpoint
CREATE INDEX "signals_pending_idx" ON "signals" USING btree ("run_id") WHERE "signals"."consumed_at" is null;--> statement-breakpoint
CREATE INDEX "runs_wake_idx" ON "runs" USING btree ("status","wake_at");