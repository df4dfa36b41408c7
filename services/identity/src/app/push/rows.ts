// The push_subscriptions row and its shape for the gRPC layer.
export interface PushSubscriptionRow {
  device_id: string;
  user_id: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  created_at: Date;
}

export interface PushSubscriptionRecord {
  deviceId: string;
  userId: string;
  endpoint: string;
  p256dh: string;
  auth: string;
  createdAt: string;
}

export const subscriptionRecord = (r: PushSubscriptionRow): PushSubscriptionRecord => ({
  deviceId: r.device_id,
  userId: r.user_id,
  endpoint: r.endpoint,
  p256dh: r.p256dh,
  auth: r.auth,
  createdAt: new Date(r.created_at).toISOString(),
});
