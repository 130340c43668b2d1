-- Funnel by day: sessions that reached each step and every step before it on a day (UTC event
-- time, in any order, as the API counts a visit), bots left out. A session is its session_id,
-- else the device's anonymous_id, else the user (as the API counts).
WITH sessions AS (
    SELECT
        CAST("timestamp" AS DATE) AS event_date,
        coalesce(session_id, anonymous_id, user_id) AS session_key,
        bool_or(event_type = 'page_view') AS viewed,
        bool_or(event_type = 'add_to_cart') AS added_to_cart,
        bool_or(event_type = 'checkout') AS checked_out,
        bool_or(event_type = 'purchase') AS purchased
    FROM events
    WHERE NOT coalesce(is_bot, false)
    GROUP BY 1, 2
)
SELECT
    event_date,
    count(CASE WHEN session_key IS NOT NULL AND viewed THEN 1 END) AS viewed,
    count(CASE WHEN session_key IS NOT NULL AND viewed AND added_to_cart THEN 1 END) AS added_to_cart,
    count(CASE WHEN session_key IS NOT NULL AND viewed AND added_to_cart AND checked_out THEN 1 END) AS checked_out,
    count(CASE WHEN session_key IS NOT NULL AND viewed AND added_to_cart AND checked_out AND purchased THEN 1 END) AS purchased
FROM sessions
GROUP BY event_date
ORDER BY event_date
