CREATE TABLE "node_ids" (
	"id" text PRIMARY KEY NOT NULL,
	"instance" text NOT NULL,
	"host" text NOT NULL,
	"pid_ns" text NOT NULL,
	"pid" integer NOT NULL,
	"stale_ms" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"heartbeat_at" timestamp with time zone NOT NULL
);
