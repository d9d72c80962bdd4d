-- The balance and available energy right after each hub event, written with the event, so a
-- repeated answer ("commit again") and history rows report the figures of that moment.
-- Events stored before this migration keep NULL (their figures are recomputed by a fold).
ALTER TABLE event ADD COLUMN balance_after INTEGER;
ALTER TABLE event ADD COLUMN available_after INTEGER;
