CREATE TABLE "journal" (
	"id" uuid PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"seq" integer NOT NULL,
	"last_seq" integer NOT NULL,
	"format" smallint NOT NULL,
	"ids" uuid[] NOT NULL,
	"time" timestamp with time zone NOT NULL,
	"body" json NOT NULL
);
--> statement-breakpoint
ALTER TABLE "journal" ADD CONSTRAINT "journal_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "journal_run_seq_idx" ON "journal" USING btree ("run_id","seq");--> statement-breakpoint
-- Format 1 rows (one per envelope) become format 2 rows of one envelope each: see journal-format.ts.
INSERT INTO "journal" ("id", "run_id", "seq", "last_seq", "format", "ids", "time", "body")
  SELECT "id", "run_id", "seq", "seq", 2, ARRAY["id"], "time",
    json_build_array(json_build_array("type", "from_path", "to_path", "causation_id", 0, "payload", "trace"))
  FROM "events";
