-- Funnel by day: sessions that reached each step on a day (UTC event time), bots left out.
-- A session is its session_id, else the device's anonymous_id, else the user (as the API counts).
SELECT
    CAST("timestamp" AS DATE) AS event_date,
    count(DISTINCT CASE WHEN event_type = 'page_view' THEN coalesce(session_id, anonymous_id, user_id) END) AS viewed,
    count(DISTINCT CASE WHEN event_type = 'add_to_cart' THEN coalesce(session_id, anonymous_id, user_id) END) AS added_to_cart,
    count(DISTINCT CASE WHEN event_type = 'checkout' THEN coalesce(session_id, anonymous_id, user_id) END) AS checked_out,
    count(DISTINCT CASE WHEN event_type = 'purchase' THEN coalesce(session_id, anonymous_id, user_id) END) AS purchased
FROM events
WHERE NOT coalesce(is_bot, false)
GROUP BY CAST("timestamp" AS DATE)
ORDER BY event_date
