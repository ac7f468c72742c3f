-- PostgreSQL: every commit looks up the page-days of the sessions it touched
-- (session_id, day), to move their bounce and duration. With the key led by
-- page_url that lookup read the whole table, so a commit cost grew with all
-- history. Led by session_id, the one index serves it and the (page, day,
-- session) conflict checks alike.
ALTER TABLE tb_page_session_day DROP CONSTRAINT IF EXISTS tb_page_session_day_pkey;
ALTER TABLE tb_page_session_day ADD PRIMARY KEY (session_id, day, page_url);
