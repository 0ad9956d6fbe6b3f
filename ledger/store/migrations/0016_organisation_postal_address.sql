-- An organisation's postal address (JSON: lines, city, state, postalCode, country), shown to patients
-- in their accounting of disclosures (HIPAA 164.528(b)(2)(ii): the recipient's address, if known).
-- Never on chain; NULL while the organisation registered none.
ALTER TABLE organisations ADD COLUMN postal_address TEXT;
