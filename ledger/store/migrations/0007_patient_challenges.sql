-- Single-use sign-in challenges for patients (shared by replicas through the store).
CREATE TABLE patient_challenges (
    challenge   BLOB    PRIMARY KEY,
    patient     TEXT    NOT NULL,
    expires_at  REAL    NOT NULL
);
CREATE INDEX patient_challenges_expiry ON patient_challenges(expires_at);
