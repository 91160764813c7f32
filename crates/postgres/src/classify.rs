//! Whether a statement's SQL may change the session's state (what
//! [`RecyclingMethod::Clean`](super::RecyclingMethod::Clean) resets).
//!
//! Conservative: a statement is clean only if its first keyword is one of
//! [`CLEAN_FIRST`] (or `SET LOCAL` / `SET TRANSACTION` / `SET CONSTRAINTS`,
//! which last until the transaction ends), it names none of
//! [`SESSION_FUNCTIONS`] and it says neither `TEMP` nor `TEMPORARY`
//! (`SELECT … INTO TEMP`). Anything the scanner cannot read (an unclosed
//! quote or comment) is dirty. Identifiers and keywords are compared
//! outside string literals, quoted identifiers' quotes removed, comments
//! skipped.

/// What a statement may do to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Effect {
    /// Nothing that outlives its transaction.
    Clean,
    /// May leave session state behind.
    Dirty,
    /// May deallocate the session's protocol-level prepared statements
    /// (`DEALLOCATE`, `DISCARD`): the statement cache must be emptied.
    Forgets,
}

/// First keywords of statements that leave no session state behind:
/// queries and DML; and [`TRANSACTION_CONTROL`]'s (the pool checks on
/// return that no transaction is left open).
const CLEAN_FIRST: &[&str] = &[
    "select", "insert", "update", "delete", "with", "values", "table", "merge", "show",
];

/// Functions that change session state when called from a plain query.
const SESSION_FUNCTIONS: &[&str] = &[
    "set_config",
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
    "dblink_connect",
    "dblink_connect_u",
];

/// The effect of `sql` (one or more statements separated by `;`).
pub(super) fn classify(sql: &str) -> Effect {
    let mut effect = Effect::Clean;
    let mut words: Vec<Word<'_>> = Vec::new();
    let mut scanner = Scanner {
        sql: sql.as_bytes(),
        at: 0,
    };
    loop {
        match scanner.next() {
            Token::Word(word) => words.push(word),
            Token::Semicolon => {
                effect = effect.max(statement(&words));
                words.clear();
            }
            Token::End => return effect.max(statement(&words)),
            Token::Unreadable => return effect.max(Effect::Dirty),
        }
    }
}

/// First keywords of statements that open, end or mark a transaction
/// block.
const TRANSACTION_CONTROL: &[&str] = &[
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "savepoint",
    "release",
];

/// Why `sql` may not be pipelined among other borrowers' statements on a
/// shared session: the first keyword (upper case) of its first statement
/// that may change the session ([`classify`]) or controls a transaction
/// block; `unreadable SQL` if the scanner cannot read it. `None`: every
/// statement in it is shareable.
pub(super) fn unshareable(sql: &str) -> Option<String> {
    first_statement(sql, true, |words| {
        let controls = words.first().is_some_and(|first| {
            !first.quoted
                && TRANSACTION_CONTROL
                    .iter()
                    .any(|k| first.text.eq_ignore_ascii_case(k))
        });
        controls || statement(words) != Effect::Clean
    })
}

/// The first keyword (upper case) of the first statement in `sql` that may
/// deallocate prepared statements.
pub(super) fn forgetting(sql: &str) -> Option<String> {
    first_statement(sql, false, |words| statement(words) == Effect::Forgets)
}

/// The first keyword (upper case) of the first statement in `sql` whose
/// words `matches`; `unreadable SQL` if the scanner cannot read it and
/// `unreadable` says so.
fn first_statement(
    sql: &str,
    unreadable: bool,
    matches: impl Fn(&[Word<'_>]) -> bool,
) -> Option<String> {
    let mut words: Vec<Word<'_>> = Vec::new();
    let mut scanner = Scanner {
        sql: sql.as_bytes(),
        at: 0,
    };
    loop {
        let token = scanner.next();
        match token {
            Token::Word(word) => {
                words.push(word);
                continue;
            }
            Token::Unreadable => return unreadable.then(|| "unreadable SQL".to_owned()),
            Token::Semicolon | Token::End => {}
        }
        if !words.is_empty() && matches(&words) {
            return Some(words[0].text.to_ascii_uppercase());
        }
        if matches!(token, Token::End) {
            return None;
        }
        words.clear();
    }
}

/// The effect of one statement, given its words in order.
fn statement(words: &[Word<'_>]) -> Effect {
    let Some(first) = words.first() else {
        return Effect::Clean;
    };
    let is = |w: &Word<'_>, k: &str| !w.quoted && w.text.eq_ignore_ascii_case(k);
    if is(first, "deallocate") || is(first, "discard") {
        return Effect::Forgets;
    }
    let clean_first = CLEAN_FIRST
        .iter()
        .chain(TRANSACTION_CONTROL)
        .any(|k| is(first, k))
        || (is(first, "set")
            && words
                .get(1)
                .is_some_and(|w| is(w, "local") || is(w, "transaction") || is(w, "constraints")));
    if !clean_first {
        return Effect::Dirty;
    }
    let session = words.iter().any(|w| {
        (!w.quoted && (is(w, "temp") || is(w, "temporary")))
            || SESSION_FUNCTIONS
                .iter()
                .any(|f| w.text.eq_ignore_ascii_case(f))
    });
    if session {
        Effect::Dirty
    } else {
        Effect::Clean
    }
}

/// An identifier or keyword.
#[derive(Debug)]
struct Word<'a> {
    text: &'a str,
    /// A quoted identifier (`"…"`): never a keyword.
    quoted: bool,
}

enum Token<'a> {
    Word(Word<'a>),
    Semicolon,
    End,
    Unreadable,
}

struct Scanner<'a> {
    sql: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// The next word or separator; literals, numbers, operators and
    /// comments are skipped.
    fn next(&mut self) -> Token<'a> {
        let sql = self.sql;
        while let Some(&c) = sql.get(self.at) {
            let next = sql.get(self.at + 1).copied();
            match c {
                b';' => {
                    self.at += 1;
                    return Token::Semicolon;
                }
                b'-' if next == Some(b'-') => {
                    while sql.get(self.at).is_some_and(|&c| c != b'\n') {
                        self.at += 1;
                    }
                }
                b'/' if next == Some(b'*') => {
                    if !self.block_comment() {
                        return Token::Unreadable;
                    }
                }
                b'\'' => {
                    if !self.string(false) {
                        return Token::Unreadable;
                    }
                }
                b'"' => {
                    let start = self.at + 1;
                    let Some(end) = self.quoted(b'"') else {
                        return Token::Unreadable;
                    };
                    return self.word(start, end, true);
                }
                b'$' => {
                    if !self.dollar() {
                        return Token::Unreadable;
                    }
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    let start = self.at;
                    while sql.get(self.at).is_some_and(|&c| {
                        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
                    }) {
                        self.at += 1;
                    }
                    // E'…': a string with backslash escapes.
                    if self.at - start == 1
                        && sql[start].eq_ignore_ascii_case(&b'e')
                        && sql.get(self.at) == Some(&b'\'')
                    {
                        if !self.string(true) {
                            return Token::Unreadable;
                        }
                        continue;
                    }
                    return self.word(start, self.at, false);
                }
                _ => self.at += 1,
            }
        }
        Token::End
    }

    fn word(&self, start: usize, end: usize, quoted: bool) -> Token<'a> {
        match std::str::from_utf8(&self.sql[start..end]) {
            Ok(text) => Token::Word(Word { text, quoted }),
            Err(_) => Token::Unreadable,
        }
    }

    /// Skips a `'…'` literal at `at` (`''` inside; `\` escapes with
    /// `backslash`).
    fn string(&mut self, backslash: bool) -> bool {
        self.at += 1;
        while let Some(&c) = self.sql.get(self.at) {
            self.at += 1;
            match c {
                b'\\' if backslash => self.at += 1,
                b'\'' if self.sql.get(self.at) == Some(&b'\'') => self.at += 1,
                b'\'' => return true,
                _ => {}
            }
        }
        false
    }

    /// Skips a `"…"` identifier at `at`; the end of its text.
    fn quoted(&mut self, quote: u8) -> Option<usize> {
        self.at += 1;
        while let Some(&c) = self.sql.get(self.at) {
            self.at += 1;
            if c == quote {
                if self.sql.get(self.at) == Some(&quote) {
                    self.at += 1;
                } else {
                    return Some(self.at - 1);
                }
            }
        }
        None
    }

    /// Skips a nested `/* … */` comment at `at`.
    fn block_comment(&mut self) -> bool {
        let mut depth = 0usize;
        while self.at < self.sql.len() {
            match (self.sql[self.at], self.sql.get(self.at + 1)) {
                (b'/', Some(b'*')) => {
                    depth += 1;
                    self.at += 2;
                }
                (b'*', Some(b'/')) => {
                    depth -= 1;
                    self.at += 2;
                    if depth == 0 {
                        return true;
                    }
                }
                _ => self.at += 1,
            }
        }
        false
    }

    /// Skips a `$n` parameter or a `$tag$ … $tag$` literal at `at`.
    fn dollar(&mut self) -> bool {
        let start = self.at;
        let mut end = start + 1;
        while self
            .sql
            .get(end)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
        {
            end += 1;
        }
        if self.sql.get(end) != Some(&b'$')
            || self.sql[start + 1..end]
                .first()
                .is_some_and(u8::is_ascii_digit)
        {
            // A parameter (`$1`) or a lone `$`.
            self.at = end;
            return true;
        }
        let tag = &self.sql[start..=end];
        let body = end + 1;
        match self.sql[body..].windows(tag.len()).position(|w| w == tag) {
            Some(at) => {
                self.at = body + at + tag.len();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Effect, classify, forgetting, unshareable};

    #[test]
    fn only_queries_and_dml_outside_transaction_blocks_are_shareable() {
        for sql in [
            "SELECT id FROM world WHERE id = $1",
            "INSERT INTO t VALUES ('BEGIN; SET x = 1')",
            "UPDATE t SET x = 1; DELETE FROM t WHERE \"begin\" = 1",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "SET LOCAL statement_timeout = 5; SELECT 1",
            "SHOW TimeZone",
            "",
        ] {
            assert_eq!(unshareable(sql), None, "{sql}");
        }
        for (sql, word) in [
            ("BEGIN", "BEGIN"),
            ("start transaction", "START"),
            ("SELECT 1; commit", "COMMIT"),
            ("savepoint a", "SAVEPOINT"),
            ("SET TimeZone = 'UTC'", "SET"),
            ("SELECT set_config('TimeZone', 'UTC', false)", "SELECT"),
            ("LISTEN ch", "LISTEN"),
            ("CREATE TEMP TABLE t (x int)", "CREATE"),
            ("DEALLOCATE ALL", "DEALLOCATE"),
            ("SELECT 'unclosed", "unreadable SQL"),
        ] {
            assert_eq!(unshareable(sql).as_deref(), Some(word), "{sql}");
        }
        assert_eq!(
            forgetting("SET x = 1; discard all").as_deref(),
            Some("DISCARD")
        );
        assert_eq!(forgetting("SET x = 1; SELECT 'unclosed"), None);
    }

    #[test]
    fn queries_dml_and_transactions_are_clean() {
        for sql in [
            "SELECT id, randomnumber FROM world WHERE id = $1",
            "  (select 1)",
            "/* hi */ -- there\n WITH x AS (SELECT 1) SELECT * FROM x",
            "UPDATE world SET randomnumber = $1 WHERE id = $2",
            "INSERT INTO t VALUES ('set_config(1)', E'it\\'s temp', $$ LISTEN x; $$)",
            "BEGIN; SET LOCAL statement_timeout = 5; SELECT 1; COMMIT",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SELECT \"temp\" FROM t",
            "SELECT pg_advisory_xact_lock(1)",
            "SHOW search_path",
            "",
            ";",
        ] {
            assert_eq!(classify(sql), Effect::Clean, "{sql}");
        }
    }

    #[test]
    fn session_state_is_dirty() {
        for sql in [
            "SET search_path = x",
            "set role alice",
            "SET SESSION AUTHORIZATION alice",
            "RESET ALL",
            "CREATE TEMP TABLE t (x int)",
            "SELECT 1 INTO TEMPORARY t",
            "SELECT pg_advisory_lock(1)",
            "select pg_catalog.set_config('search_path', 'x', false)",
            "SELECT \"pg_try_advisory_lock\"(1)",
            "LISTEN ch",
            "PREPARE p AS SELECT 1",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "SELECT 1; SET work_mem = '1MB'",
            "DO $$BEGIN PERFORM 1; END$$",
            "CALL p()",
            "SELECT 'unclosed",
            "SELECT 1 /* unclosed",
            "SELECT $a$ unclosed",
        ] {
            assert_eq!(classify(sql), Effect::Dirty, "{sql}");
        }
        assert_eq!(classify("DEALLOCATE ALL"), Effect::Forgets);
        assert_eq!(classify("SET x = 1; DISCARD ALL"), Effect::Forgets);
    }
}
