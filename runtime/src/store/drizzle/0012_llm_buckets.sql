CREATE TABLE "llm_buckets" (
	"key" text PRIMARY KEY NOT NULL,
	"state" jsonb NOT NULL
);
