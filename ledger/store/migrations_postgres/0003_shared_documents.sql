-- Small documents every replica must agree on: the encrypted keystore entries (`keys/<name>.json`,
-- Web3 Secret Storage, encrypted with the keystore passphrase) and the deployment record
-- (`deployment.json`). Written once (the first writer wins), never changed.
CREATE TABLE shared_documents (
    name            TEXT    PRIMARY KEY,
    body            TEXT    NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL
);
