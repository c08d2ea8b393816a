//! [`Spelled`]: a column that holds one word of a closed set (a job's status, its type),
//! read straight into the domain's value: the text is parsed where the driver holds it,
//! never copied into a `String` of its own (two heap strings a job, 3% of a page of 100 on
//! SQLite, with their parse after). A word that is none of the set reads as `None`, which
//! the conversion to a job reports as an unreadable column, as before.

use std::str::FromStr;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;
use diesel::sqlite::Sqlite;
use jobs_domain::{JobStatus, JobType};
use std::io::Write as _;

use crate::db::MultiBackend;

/// A closed set of words.
pub(crate) trait Word: Copy + FromStr + std::fmt::Debug + Send + Sync + 'static {
    /// How the value is written.
    fn word(self) -> &'static str;
}

impl Word for JobStatus {
    fn word(self) -> &'static str {
        self.as_str()
    }
}

impl Word for JobType {
    fn word(self) -> &'static str {
        self.as_str()
    }
}

/// A column holding a [`Word`]; `None` when what it holds is none of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromSqlRow, AsExpression)]
#[diesel(sql_type = Text)]
pub(crate) struct Spelled<T: Word>(pub Option<T>);

impl<T: Word> Spelled<T> {
    pub(crate) fn of(value: T) -> Self {
        Spelled(Some(value))
    }

    fn text(&self) -> Result<&'static str, Box<dyn std::error::Error + Send + Sync>> {
        self.0.map(T::word).ok_or_else(|| "a word that is none of its set cannot be written".into())
    }
}

impl<T: Word> FromSql<Text, Sqlite> for Spelled<T> {
    fn from_sql(
        mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        Ok(Spelled(value.read_text().parse().ok()))
    }
}

impl<T: Word> FromSql<Text, Pg> for Spelled<T> {
    fn from_sql(
        value: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        Ok(Spelled(std::str::from_utf8(value.as_bytes()).ok().and_then(|t| t.parse().ok())))
    }
}

impl<T: Word> FromSql<Text, MultiBackend> for Spelled<T> {
    fn from_sql(
        value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        value.from_sql::<Spelled<T>, Text>()
    }
}

impl<T: Word> ToSql<Text, Sqlite> for Spelled<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.text()?);
        Ok(IsNull::No)
    }
}

impl<T: Word> ToSql<Text, Pg> for Spelled<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(self.text()?.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl<T: Word> ToSql<Text, MultiBackend> for Spelled<T> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Text, self));
        Ok(IsNull::No)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use jobs_domain::{NewJob, Owner, Visibility};

    use super::*;
    use crate::test_db::TestDatabase;
    use crate::{DatabaseUrl, JobStore, PoolOptions, StoreError};

    #[test]
    fn every_status_and_type_reads_back_and_any_other_word_is_an_unreadable_column() {
        let db = TestDatabase::new();
        let url = DatabaseUrl::parse(db.url()).unwrap();
        let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
        let id = store.create(Owner::new("org", "ann", None), NewJob::default(), None).unwrap();
        let id = id.job.id;
        let vis = Visibility::organization("org");
        let set = |column: &str, word: &str| {
            db.execute(&format!("UPDATE jobs SET {column} = '{word}' WHERE id = '{id}'"));
        };
        for status in JobStatus::ALL {
            set("status", status.as_str());
            assert_eq!(store.get(&vis, id).unwrap().status, status);
        }
        for job_type in JobType::ALL {
            set("job_type", job_type.as_str());
            assert_eq!(store.get(&vis, id).unwrap().job_type, job_type);
        }
        for (column, good) in [("status", "created"), ("job_type", "job")] {
            set(column, "Created");
            match store.get(&vis, id) {
                Err(StoreError::Internal(why)) => {
                    assert!(why.to_string().contains(&format!("unreadable {column}")), "{why}");
                }
                other => panic!("{column}: {other:?}"),
            }
            set(column, good);
        }
    }
}
