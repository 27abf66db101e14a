CREATE TABLE "events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"seq" integer NOT NULL,
	"type" text NOT NULL,
	"from_path" text NOT NULL,
	"to_path" text NOT NULL,
	"causation_id" uuid,
	"payload" jsonb,
	"trace" jsonb,
	"time" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"n" bigserial NOT NULL,
	"id" text PRIMARY KEY NOT NULL,
	"graph" text NOT NULL,
	"graph_version" text NOT NULL,
	"status" text NOT NULL,
	"input" jsonb NOT NULL,
	"output" jsonb,
	"error" jsonb,
	"budget" jsonb NOT NULL,
	"usage" jsonb NOT NULL,
	"nodes" jsonb NOT NULL,
	"trace_id" text,
	"owner" text,
	"last_seq" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "runs_n_unique" UNIQUE("n")
);
--> statement-breakpoint
ALTER TABLE "events" ADD CONSTRAINT "events_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "events_run_seq_idx" ON "events" USING btree ("run_id","seq");--> statement-breakpoint
CREATE INDEX "runs_status_idx" ON "runs" USING btree ("status","n");--> statement-breakpoint
CREATE INDEX "runs_graph_idx" ON "runs" USING btree ("graph","n");