#!/bin/bash
BOT="1059021768:AAxdjjhTIEJFlBH6UC4pURq4hOlpdMBUIu3"
CHAT_ID=-1007925178128
curl -s "https://api.telegram.org/bot${BOT}/sendMessage" -d chat_id=$CHAT_ID -d text="backup finished"
curl -s https://api.telegram.org/bot2880524690:AAzuRErh3tSfLON_vAO5hyL8lqO4qXYIJRD/getUpdates | jq '.result[-1]'
