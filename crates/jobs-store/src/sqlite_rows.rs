//! Multi-row SQLite statements that stay prepared: many rows' values as one `VALUES` list of
//! bound parameters. SQLite has no arrays to bind, so the statement's text grows with its
//! rows, and parsing it costs about as much as running it (6 ms for a thousand rows of 14
//! values). A statement of exactly [`ROWS`] rows is the same text every time, so diesel's
//! statement cache (keyed on the text) keeps it prepared per connection; a shorter one, the
//! tail of a large write or a small write, is prepared each time, so the cache holds one
//! statement per shape however the writes fall. (diesel's own multi-row INSERT of a slice
//! is never kept, and that of an array only for rows that borrow nothing.)

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, RunQueryDsl};

/// Rows per statement at most. A kept statement holds memory for as long as its connection
/// lives, in proportion to its values: at 1000 rows the three statements took 3.3 MB a
/// connection; at 100, a tenth of that, and a batch of 2000 expiries is 20 runs of one.
pub(crate) const ROWS: usize = 100;

/// Binds one row's values, in the order of the statement's columns.
pub(crate) type BindRow<R> = for<'b> fn(&'b R, &mut Values<'_, '_, 'b>) -> QueryResult<()>;

/// One row's values as they are bound: each after the first is preceded by `", "`.
pub(crate) struct Values<'a, 'p, 'b> {
    out: &'a mut AstPass<'p, 'b, Sqlite>,
    first: bool,
}

impl<'b> Values<'_, '_, 'b> {
    /// Binds the next value, as SQL type `ST`.
    pub(crate) fn bind<ST, U>(&mut self, value: &'b U) -> QueryResult<&mut Self>
    where
        Sqlite: HasSqlType<ST>,
        U: ToSql<ST, Sqlite> + ?Sized,
    {
        if !std::mem::replace(&mut self.first, false) {
            self.out.push_sql(", ");
        }
        self.out.push_bind_param::<ST, U>(value)?;
        Ok(self)
    }
}

/// `head`, then `(…), (…)` with one row's values in each, then `tail`.
pub(crate) struct Rows<'a, R> {
    pub head: &'static str,
    pub rows: &'a [R],
    pub bind: BindRow<R>,
    pub tail: &'static str,
}

impl<R> Rows<'_, R> {
    /// The statements for `rows`, [`ROWS`] at a time.
    pub(crate) fn chunks<'a>(
        head: &'static str,
        rows: &'a [R],
        bind: BindRow<R>,
        tail: &'static str,
    ) -> impl Iterator<Item = Rows<'a, R>> {
        rows.chunks(ROWS).map(move |rows| Rows { head, rows, bind, tail })
    }
}

impl<R> QueryId for Rows<'_, R> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<R> Query for Rows<'_, R> {
    type SqlType = Untyped;
}

impl<R, Conn> RunQueryDsl<Conn> for Rows<'_, R> {}

impl<R> QueryFragment<Sqlite> for Rows<'_, R> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        if self.rows.len() != ROWS {
            out.unsafe_to_cache_prepared();
        }
        out.push_sql(self.head);
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            (self.bind)(row, &mut Values { out: &mut out, first: true })?;
            out.push_sql(")");
        }
        out.push_sql(self.tail);
        Ok(())
    }
}

/// The statement's text, and whether it is kept once prepared.
#[cfg(test)]
pub(crate) fn sql<R>(rows: &Rows<'_, R>) -> (String, bool) {
    use diesel::query_builder::QueryBuilder;
    let mut sql = diesel::sqlite::SqliteQueryBuilder::new();
    rows.to_sql(&mut sql, &Sqlite).expect("SQL");
    (sql.finish(), rows.is_safe_to_cache_prepared(&Sqlite).expect("cacheable"))
}
