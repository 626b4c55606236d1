-- Schema of the store's sqlite3 file. Applied on every start, so everything is
-- "if not exists". Rows are only ever written through store/db.py, but the
-- derived data (full-text index, tag index, counters) is kept by triggers so it
-- stays right whoever writes: the application, a bulk loader or a manual fix.
--
-- Every page is read newest first by id with "id < cursor", so each list has an
-- index whose last column is the tweet id: tweets (rowid), tweets(author_id),
-- tweet_tags(tag, tweet_id) and tweets_fts (rowid order).

create table if not exists accounts (
    id integer primary key autoincrement,  -- never reused: old links must not name a new row
    -- NOCASE folds ASCII only, which is all a username may hold; the unique
    -- index doubles as the case-insensitive lookup and prefix-search index.
    username text not null unique collate nocase,
    display_name text not null,
    -- Python's str.lower() of display_name: sqlite's lower() is ASCII-only.
    display_lower text not null,
    password_hash text not null,
    created_at text not null,
    tweet_count integer not null default 0
);
create index if not exists accounts_display_lower on accounts (display_lower);

create table if not exists tweets (
    id integer primary key autoincrement,  -- never reused: likes and links of a deleted tweet
    author_id integer not null references accounts (id),
    text text not null,
    -- JSON array of lower-case tags in the order written; returned as is, and
    -- the source the tweet_tags rows are derived from.
    hashtags text not null default '[]',
    likes integer not null default 0,
    created_at text not null,
    edited_at text
);
create index if not exists tweets_author on tweets (author_id, id);

create table if not exists tweet_tags (
    tag text not null,
    tweet_id integer not null references tweets (id) on delete cascade,
    primary key (tag, tweet_id)
) without rowid;
create index if not exists tweet_tags_tweet on tweet_tags (tweet_id);

create table if not exists hashtag_counts (
    tag text primary key,
    tweets integer not null
) without rowid;
create index if not exists hashtag_counts_popular on hashtag_counts (tweets desc, tag);

-- External content: the text lives once, in tweets. remove_diacritics 2 makes
-- "ecole" find "école" too, as users of a search box expect.
create virtual table if not exists tweets_fts using fts5 (
    text,
    content = 'tweets',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

create table if not exists applied_batches (
    batch_id text primary key,
    applied_at text not null
) without rowid;

-- The first answer to each keyed write (the api's Idempotency-Key), written in the write's
-- own transaction, so a retry finds either both or neither. Scoped by operation and principal
-- ("accounts", "tweets:7"); the fingerprint is the api's HMAC of what the request meant.
-- Records older than the api's window are deleted on the next keyed write, along the index.
create table if not exists request_keys (
    scope text not null,
    key text not null,
    fingerprint text not null,
    status integer not null,
    answer text not null,             -- JSON, as first answered
    created_at real not null,         -- Unix time
    primary key (scope, key)
) without rowid;
create index if not exists request_keys_created on request_keys (created_at);

-- Each account's token generation. The api signs the generation into every token it issues
-- and honours a token only while it equals the account's current one: a password change
-- moves it on, ending every token issued before (and so does logging out a token that names
-- no session, or one session too many: see ended_sessions). No row means generation 0. A
-- table of its own, not a column of accounts, so that a file made before it existed gains it
-- here ("if not exists", on every start) with no migration step and every account at 0.
create table if not exists token_generations (
    account_id integer primary key references accounts (id),
    generation integer not null
);

-- The sessions a log-out ended, one by one (the api signs a random session number into each
-- token), each kept until its token's expiry ("until", Unix time): after that the token is
-- refused anyway. Rows past it are deleted as reads and writes meet them; moving the
-- generation on deletes the account's rows (their tokens have all ended), and so does an
-- account's 101st live row, which moves the generation on instead (see store/db.py).
create table if not exists ended_sessions (
    account_id integer not null references accounts (id),
    session integer not null,
    until integer not null,
    primary key (account_id, session)
) without rowid;

-- Running totals for stats(), so it never has to count rows.
create table if not exists counters (
    name text primary key,
    value integer not null
) without rowid;
insert or ignore into counters (name, value) values
    ('accounts', 0), ('tweets', 0), ('likes', 0), ('batches', 0);

create trigger if not exists accounts_ai after insert on accounts begin
    update counters set value = value + 1 where name = 'accounts';
end;

create trigger if not exists tweets_ai after insert on tweets begin
    insert into tweets_fts (rowid, text) values (new.id, new.text);
    insert into tweet_tags (tag, tweet_id)
        select value, new.id from json_each(new.hashtags);
    update accounts set tweet_count = tweet_count + 1 where id = new.author_id;
    update counters set value = value + 1 where name = 'tweets';
    update counters set value = value + new.likes where name = 'likes' and new.likes <> 0;
end;

create trigger if not exists tweets_ad after delete on tweets begin
    -- An external-content FTS5 table is told the old text to remove it.
    insert into tweets_fts (tweets_fts, rowid, text) values ('delete', old.id, old.text);
    -- Explicit rather than left to "on delete cascade", which only works on
    -- connections that turned foreign keys on.
    delete from tweet_tags where tweet_id = old.id;
    update accounts set tweet_count = tweet_count - 1 where id = old.author_id;
    update counters set value = value - 1 where name = 'tweets';
end;

create trigger if not exists tweets_au_text after update of text on tweets begin
    insert into tweets_fts (tweets_fts, rowid, text) values ('delete', old.id, old.text);
    insert into tweets_fts (rowid, text) values (new.id, new.text);
end;

create trigger if not exists tweets_au_hashtags after update of hashtags on tweets begin
    -- Only the difference, so tags the edit kept are not dropped and re-counted.
    delete from tweet_tags where tweet_id = old.id
        and tag not in (select value from json_each(new.hashtags));
    insert into tweet_tags (tag, tweet_id)
        select value, new.id from json_each(new.hashtags)
        where value not in (select tag from tweet_tags where tweet_id = new.id);
end;

-- "likes" counts likes written, so it only grows: deleting a tweet keeps them.
create trigger if not exists tweets_au_likes after update of likes on tweets begin
    update counters set value = value + new.likes - old.likes where name = 'likes';
end;

create trigger if not exists tweet_tags_ai after insert on tweet_tags begin
    insert into hashtag_counts (tag, tweets) values (new.tag, 1)
        on conflict (tag) do update set tweets = tweets + 1;
end;

create trigger if not exists tweet_tags_ad after delete on tweet_tags begin
    update hashtag_counts set tweets = tweets - 1 where tag = old.tag;
    -- A tag nobody uses any more must not be suggested.
    delete from hashtag_counts where tag = old.tag and tweets <= 0;
end;

create trigger if not exists applied_batches_ai after insert on applied_batches begin
    update counters set value = value + 1 where name = 'batches';
end;
