//! The built-in patient-records model: its tables, their columns in COPY
//! order, and the DDL that creates them (`seeds/schema.sql`,
//! `seeds/constraints.sql`).

/// Postgres column types the built-in model uses, with the names
/// `information_schema.columns.data_type` reports for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    BigInt,
    Int,
    Text,
    Char,
    Date,
    Timestamp,
    Numeric,
}

impl ColType {
    pub fn information_schema_name(self) -> &'static str {
        match self {
            ColType::BigInt => "bigint",
            ColType::Int => "integer",
            ColType::Text => "text",
            ColType::Char => "character",
            ColType::Date => "date",
            ColType::Timestamp => "timestamp without time zone",
            ColType::Numeric => "numeric",
        }
    }
}

#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub ty: ColType,
}

#[derive(Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
}

/// Which of the built-in tables (also its index in [`TABLES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableId {
    Practices,
    Practitioners,
    Patients,
    Conditions,
    Allergies,
    Appointments,
    Prescriptions,
    Observations,
}

impl TableId {
    /// Load order: parents before children.
    pub const ALL: [TableId; 8] = [
        TableId::Practices,
        TableId::Practitioners,
        TableId::Patients,
        TableId::Conditions,
        TableId::Allergies,
        TableId::Appointments,
        TableId::Prescriptions,
        TableId::Observations,
    ];

    pub fn table(self) -> &'static Table {
        &TABLES[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.table().name
    }

    /// Tables with one row per patient-level entity share the patient chunking.
    pub fn per_patient(self) -> bool {
        !matches!(self, TableId::Practices | TableId::Practitioners)
    }
}

macro_rules! cols {
    ($($name:literal : $ty:ident),* $(,)?) => {
        &[$(Column { name: $name, ty: ColType::$ty }),*]
    };
}

pub static TABLES: [Table; 8] = [
    Table {
        name: "practices",
        columns: cols!["id": BigInt, "name": Text, "town": Text, "postcode": Text, "phone": Text],
    },
    Table {
        name: "practitioners",
        columns: cols![
            "id": BigInt, "practice_id": BigInt, "given_name": Text, "family_name": Text,
            "role": Text, "email": Text,
        ],
    },
    Table {
        name: "patients",
        columns: cols![
            "id": BigInt, "nhs_number": Char, "given_name": Text, "family_name": Text,
            "date_of_birth": Date, "sex": Char, "postcode": Text, "phone": Text, "email": Text,
            "date_of_death": Date, "practice_id": BigInt, "registered_on": Date,
        ],
    },
    Table {
        name: "conditions",
        columns: cols![
            "id": BigInt, "patient_id": BigInt, "snomed_code": Text, "term": Text,
            "icd10_code": Text, "onset_date": Date, "resolved_date": Date, "status": Text,
        ],
    },
    Table {
        name: "allergies",
        columns: cols![
            "id": BigInt, "patient_id": BigInt, "snomed_code": Text, "substance": Text,
            "reaction": Text, "severity": Text, "recorded_on": Date,
        ],
    },
    Table {
        name: "appointments",
        columns: cols![
            "id": BigInt, "patient_id": BigInt, "practitioner_id": BigInt, "starts_at": Timestamp,
            "duration_minutes": Int, "mode": Text, "status": Text,
        ],
    },
    Table {
        name: "prescriptions",
        columns: cols![
            "id": BigInt, "patient_id": BigInt, "condition_id": BigInt, "practitioner_id": BigInt,
            "medicine": Text, "dose": Text, "quantity": Int, "issued_on": Date,
        ],
    },
    Table {
        name: "observations",
        columns: cols![
            "id": BigInt, "patient_id": BigInt, "snomed_code": Text, "term": Text,
            "value": Numeric, "unit": Text, "observed_at": Timestamp,
        ],
    },
];

pub const SCHEMA_SQL: &str = include_str!("../../seeds/schema.sql");
pub const CONSTRAINTS_SQL: &str = include_str!("../../seeds/constraints.sql");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_tables() {
        for t in TableId::ALL {
            assert_eq!(
                t.name(),
                format!("{t:?}").to_lowercase(),
                "TABLES out of TableId order"
            );
        }
    }

    #[test]
    fn schema_sql_names_every_column() {
        for t in &TABLES {
            let start = SCHEMA_SQL
                .find(&format!("CREATE TABLE {} (", t.name))
                .unwrap_or_else(|| panic!("{} missing from schema.sql", t.name));
            let body = &SCHEMA_SQL[start..start + SCHEMA_SQL[start..].find(");").unwrap()];
            for c in t.columns {
                assert!(
                    body.contains(&format!("\n    {} ", c.name)),
                    "{}.{}",
                    t.name,
                    c.name
                );
            }
        }
    }
}
