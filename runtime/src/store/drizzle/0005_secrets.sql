CREATE TABLE "secrets" (
	"run_id" text NOT NULL,
	"handle" text NOT NULL,
	"key_id" text NOT NULL,
	"iv" text NOT NULL,
	"data" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "secrets_run_id_handle_pk" PRIMARY KEY("run_id","handle")
);
--> statement-breakpoint
ALTER TABLE "secrets" ADD CONSTRAINT "secrets_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;