-- Shadow serving (issue 11): a model-running processor also predicts each input with the model's
-- shadow version and records that prediction on predictions.feedback with stage 'shadow' and a
-- prediction id of its own (labels judge the production prediction). The feedback sink keeps the
-- stage; rows from before it are production's.
ALTER TABLE feedback_predictions
  ADD COLUMN stage text NOT NULL DEFAULT 'production' CHECK (stage IN ('production', 'shadow'));

-- The shadow evaluation: a task's shadow predictions of one version over time, each joined by
-- inquiry to production's prediction of the same task (feedback_predictions_inquiry).
CREATE INDEX feedback_predictions_stage ON feedback_predictions (task, stage, model, predicted_at);
