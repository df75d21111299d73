#!/bin/sh
# post the release note to #deploys
SLACK_WEBHOOK="https://hooks.slack.com/services/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"
curl -s -X POST -H 'Content-type: application/json' \
  --data '{"text":"payments-api 7.63.0 deployed"}' "$SLACK_WEBHOOK"
# and as the bot, with a thread
curl -s -H "Authorization: Bearer xoxb-937688532644-4274739399506-PWRciWqUSXQfGVk02hJGvUtI" \
  -d channel=C8ZRE4ME0MN -d text=done https://slack.com/api/chat.postMessage
# example from the docs (not a real hook):
# https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX
