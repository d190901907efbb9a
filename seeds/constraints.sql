-- Keys and indexes of ward's built-in schema, built after the load.
ALTER TABLE practices     ADD PRIMARY KEY (id);
ALTER TABLE practitioners ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (practice_id) REFERENCES practices (id);
ALTER TABLE patients      ADD PRIMARY KEY (id),
    ADD UNIQUE (nhs_number),
    ADD CHECK (sex IN ('F', 'M')),
    ADD CHECK (date_of_death IS NULL OR date_of_death > date_of_birth),
    ADD FOREIGN KEY (practice_id) REFERENCES practices (id);
ALTER TABLE conditions    ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE;
ALTER TABLE allergies     ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE;
ALTER TABLE appointments  ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (practitioner_id) REFERENCES practitioners (id);
ALTER TABLE prescriptions ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (condition_id) REFERENCES conditions (id) ON DELETE CASCADE,
    ADD FOREIGN KEY (practitioner_id) REFERENCES practitioners (id);
ALTER TABLE observations  ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (patient_id) REFERENCES patients (id) ON DELETE CASCADE;
CREATE INDEX ON practitioners (practice_id);
CREATE INDEX ON patients (practice_id);
CREATE INDEX ON conditions (patient_id);
CREATE INDEX ON allergies (patient_id);
CREATE INDEX ON appointments (patient_id);
CREATE INDEX ON appointments (practitioner_id, starts_at);
CREATE INDEX ON prescriptions (patient_id);
CREATE INDEX ON prescriptions (condition_id);
CREATE INDEX ON observations (patient_id);
