ALTER TABLE "checkpoints" ALTER COLUMN "state" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "journal" ALTER COLUMN "body" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "checkpoints" ADD COLUMN "zstate" "bytea";--> statement-breakpoint
ALTER TABLE "journal" ADD COLUMN "zbody" "bytea";