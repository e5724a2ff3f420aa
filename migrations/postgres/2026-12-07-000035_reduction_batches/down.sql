DROP TABLE reduction_serials;
DROP TABLE reduction_batch_items;
DROP TABLE reduction_batches;
