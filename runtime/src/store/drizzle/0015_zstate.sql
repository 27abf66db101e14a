ALTER TABLE "checkpoints" ALTER COLUMN "state" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "checkpoints" ADD COLUMN "zstate" "bytea";