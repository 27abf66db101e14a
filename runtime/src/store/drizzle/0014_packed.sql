ALTER TABLE "journal" ALTER COLUMN "body" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "journal" ADD COLUMN "packed" "bytea";--> statement-breakpoint
ALTER TABLE "journal" ADD COLUMN "packed_turns" "bytea";